H='"background":"habitat","clutter":"habitat","lighting":"scene","occluder":"habitat","scenes":12,"light_jitter":0.2'
SRC='"source_name":"src_blob","source":{'$H',"namespace_shapes":["star","hexagon","crescent","ellipse","diamond","chevron"],"parts":[2,3],"habitat_style":"blobs","habitat_clutter":[2,8]}'
python exp2.py '{"name":"D3_hab_fam_blobsrc",'$SRC',"target":{'$H',"families":20},"runs":["spreading","spreading_nn","supervised"]}'
